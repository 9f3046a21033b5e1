//! The names `roster seed` draws from: first names and surnames of many languages, each
//! language with its share of the users and its names listed most common first.
//!
//! The shares and the order give a realistic spread rather than a uniform one: a common
//! surname such as Smith is about one user in 80, so a search for it returns the slice it
//! would in a real list. Names are written as people write them, accents and all; one in
//! another script carries its Latin spelling after a `/`, for the email address.

/// A language's names: which language, its share of the users (a weight beside the other
/// languages'), and its names, most common first, separated by commas.
pub struct Group {
    /// Which language: a first name is mostly paired with a surname of the same language.
    pub language: &'static str,
    pub share: u32,
    pub names: &'static str,
}

/// First names.
pub const FIRST_NAMES: &[Group] = &[
    Group {
        language: "English",
        share: 340,
        names: "James, Mary, John, Patricia, Robert, Jennifer, Michael, Linda, William, Elizabeth, \
                David, Barbara, Richard, Susan, Joseph, Jessica, Thomas, Sarah, Charles, Karen, \
                Christopher, Nancy, Daniel, Lisa, Matthew, Betty, Anthony, Margaret, Mark, Sandra, \
                Donald, Ashley, Steven, Kimberly, Paul, Emily, Andrew, Donna, Joshua, Michelle, \
                Kenneth, Carol, Kevin, Amanda, Brian, Dorothy, George, Melissa, Edward, Deborah, \
                Ronald, Stephanie, Timothy, Rebecca, Jason, Sharon, Jeffrey, Laura, Ryan, Cynthia, \
                Jacob, Kathleen, Gary, Amy, Nicholas, Shirley, Eric, Angela, Jonathan, Helen, Jon, \
                Anna, Bob, Grace, Zoe, Chloe",
    },
    Group {
        language: "German",
        share: 60,
        names: "Lukas, Anna, Maximilian, Lena, Jürgen, Sophie, Felix, Lea, Jonas, Hannah, Leon, \
                Marie, Günter, Jörg, Käthe, Uwe, Ursula, Wolfgang, Heike, Dieter",
    },
    Group {
        language: "French",
        share: 60,
        names: "Jean, Marie, Pierre, Camille, Michel, Léa, Philippe, Chloé, François, Manon, Louis, \
                Inès, Gabriel, Hélène, Benoît, Zoé, Jérôme, Céline, Raphaël, Agnès, Noël, Gaëlle",
    },
    Group {
        language: "Spanish",
        share: 90,
        names: "José, María, Antonio, Carmen, Manuel, Lucía, Francisco, Ana, Juan, Sofía, David, \
                Isabel, Javier, Laura, Jesús, Marta, Carlos, Elena, Alejandro, Paula, Miguel, \
                Raquel, Rafael, Pilar, Andrés, Begoña, Ramón, Inmaculada, Iñaki, Nuria",
    },
    Group {
        language: "Portuguese",
        share: 40,
        names: "João, Maria, António, Ana, Luís, Beatriz, Tiago, Inês, Gonçalo, Leonor, Rodrigo, \
                Conceição, Sebastião, Lúcia",
    },
    Group {
        language: "Italian",
        share: 50,
        names: "Giuseppe, Maria, Giovanni, Anna, Antonio, Giulia, Francesco, Chiara, Luca, \
                Francesca, Marco, Sara, Alessandro, Elena, Niccolò, Alessia, Matteo, Martina",
    },
    Group {
        language: "Dutch",
        share: 20,
        names: "Jan, Anke, Pieter, Sanne, Daan, Femke, Joost, Lotte, Bram, Maartje, Sjoerd, Ilse",
    },
    Group {
        language: "Nordic",
        share: 30,
        names: "Lars, Anna, Erik, Ingrid, Björn, Astrid, Jon, Sigrid, Søren, Åsa, Magnus, Kirsten, \
                Øystein, Märta, Håkon, Freja, Jörgen, Sólveig",
    },
    Group {
        language: "Finnish and Hungarian",
        share: 15,
        names: "Mikko, Aino, Juha, Päivi, Jussi, Sirpa, László, Zsófia, István, Katalin, Gábor, \
                Ildikó",
    },
    Group {
        language: "Polish and Czech",
        share: 40,
        names: "Piotr, Anna, Krzysztof, Agnieszka, Tomasz, Małgorzata, Łukasz, Katarzyna, Paweł, \
                Joanna, Michał, Zofia, Jiří, Jana, Tomáš, Petra, Lukáš, Tereza, Radek, Věra",
    },
    Group {
        language: "Russian and Ukrainian, in Latin letters and in Cyrillic",
        share: 35,
        names: "Dmitry, Olga, Sergey, Natalia, Alexei, Tatiana, Ivan, Irina, Mikhail, Svetlana, \
                Andriy, Oksana, Дмитрий/Dmitriy, Ольга/Olga, Иван/Ivan, Наталья/Natalya",
    },
    Group {
        language: "Greek, in Latin letters and in Greek",
        share: 15,
        names: "Georgios, Maria, Konstantinos, Eleni, Dimitrios, Katerina, Νίκος/Nikos, \
                Σοφία/Sofia",
    },
    Group {
        language: "Turkish",
        share: 25,
        names: "Mehmet, Ayşe, Mustafa, Fatma, Ahmet, Emine, Ali, Zeynep, Hüseyin, Elif, İbrahim, \
                Özlem, Çağla, Gökhan",
    },
    Group {
        language: "Arabic",
        share: 40,
        names: "Mohammed, Fatima, Ahmed, Aisha, Omar, Mariam, Ali, Layla, Youssef, Nour, Khalid, \
                Zainab, Hassan, Amira, Karim, Yasmin",
    },
    Group {
        language: "Hebrew",
        share: 10,
        names: "Noam, Tamar, Yosef, Noa, David, Shira, Eitan, Maya",
    },
    Group {
        language: "Indian",
        share: 50,
        names: "Aarav, Priya, Rahul, Ananya, Amit, Sneha, Vikram, Pooja, Arjun, Kavya, Rohan, \
                Divya, Sanjay, Lakshmi, Suresh, Meera",
    },
    Group {
        language: "Chinese, in pinyin and in Han characters",
        share: 30,
        names: "Wei, Fang, Jing, Li, Min, Jun, Xiu, Lei, Yan, Hao, Ying, Tao, 伟/Wei, 芳/Fang",
    },
    Group {
        language: "Japanese",
        share: 20,
        names: "Hiroshi, Yuki, Takashi, Haruka, Kenji, Sakura, Daiki, Aiko, Sōta, Yōko, Ren, Mei",
    },
    Group {
        language: "Korean",
        share: 15,
        names: "Min-jun, Seo-yeon, Ji-ho, Ji-woo, Hyun-woo, Soo-ah, Do-yun, Ha-eun",
    },
    Group {
        language: "Vietnamese",
        share: 10,
        names: "Minh, Linh, Anh, Thảo, Dũng, Hương, Quang, Ngọc",
    },
    Group {
        language: "West and East African",
        share: 35,
        names: "Kwame, Amara, Chinedu, Ngozi, Oluwaseun, Adaeze, Kofi, Abena, Babajide, Folake, \
                Jabari, Wanjiru, Tendai, Nia, Sekou, Aminata",
    },
    Group {
        language: "Irish and Scottish",
        share: 20,
        names: "Seán, Siobhán, Niamh, Aoife, Cillian, Orla, Pádraig, Róisín, Eilidh, Ruairí",
    },
];

/// Surnames.
pub const SURNAMES: &[Group] = &[
    Group {
        language: "English",
        share: 380,
        names: "Smith, Johnson, Williams, Brown, Jones, Miller, Davis, Wilson, Anderson, Taylor, \
                Thomas, Moore, Jackson, Martin, Lee, Thompson, White, Harris, Clark, Lewis, \
                Robinson, Walker, Young, Allen, King, Wright, Scott, Hill, Green, Adams, Baker, \
                Nelson, Carter, Mitchell, Roberts, Turner, Phillips, Campbell, Parker, Evans, \
                Edwards, Collins, Stewart, Morris, Murphy, Cook, Rogers, Morgan, Cooper, Peterson, \
                Reed, Bailey, Bell, Kelly, Howard, Ward, Cox, Richardson, Wood, Watson, Brooks, \
                Bennett, Gray, Hughes, Price, Sanders, Myers, Long, Ross, Foster, Smyth, Davies",
    },
    Group {
        language: "German",
        share: 60,
        names: "Müller, Schmidt, Schneider, Fischer, Weber, Meyer, Wagner, Becker, Schulz, \
                Hoffmann, Schäfer, Koch, Bauer, Richter, Klein, Wolf, Schröder, Neumann, \
                Schwarz, Zimmermann, Krüger, Hartmann, Lange, Weiß, Günther, Köhler",
    },
    Group {
        language: "French",
        share: 55,
        names: "Martin, Bernard, Dubois, Thomas, Robert, Richard, Petit, Durand, Leroy, Moreau, \
                Simon, Laurent, Lefèvre, Michel, Garcia, David, Bertrand, Roux, Vincent, Fournier, \
                Lefèbvre, Girard, Bonnet, Dupont, Lambert, Fontaine, Rousseau, Chevalier, Faure, \
                Mercier",
    },
    Group {
        language: "Spanish",
        share: 90,
        names: "García, Rodríguez, González, Fernández, López, Martínez, Sánchez, Pérez, Gómez, \
                Martín, Jiménez, Ruiz, Hernández, Díaz, Moreno, Muñoz, Álvarez, Romero, Alonso, \
                Gutiérrez, Navarro, Torres, Domínguez, Vázquez, Ramos, Gil, Ramírez, Serrano, \
                Blanco, Suárez, Castillo, Ortega, Rubio, Núñez, de la Cruz, Ibáñez",
    },
    Group {
        language: "Portuguese",
        share: 40,
        names: "Silva, Santos, Ferreira, Pereira, Oliveira, Costa, Rodrigues, Martins, Jesus, \
                Sousa, Fernandes, Gonçalves, Gomes, Lopes, Marques, Alves, Conceição, Magalhães, \
                Araújo, Simões",
    },
    Group {
        language: "Italian",
        share: 50,
        names: "Rossi, Russo, Ferrari, Esposito, Bianchi, Romano, Colombo, Ricci, Marino, Greco, \
                Bruno, Gallo, Conti, De Luca, Mancini, Costa, Giordano, Rizzo, Lombardi, Moretti, \
                D'Angelo, Barbieri, Fontana, Santoro",
    },
    Group {
        language: "Dutch",
        share: 20,
        names: "de Jong, Jansen, de Vries, van den Berg, van Dijk, Bakker, Janssen, Visser, Smit, \
                Meijer, de Boer, Mulder, van der Meer, Bos",
    },
    Group {
        language: "Nordic",
        share: 30,
        names: "Jensen, Nielsen, Hansen, Pedersen, Andersen, Johansson, Karlsson, Nilsson, \
                Eriksson, Larsson, Olsen, Søndergaard, Sjöberg, Åberg, Bjørnstad, Ström, \
                Lindqvist, Guðmundsson",
    },
    Group {
        language: "Finnish and Hungarian",
        share: 15,
        names: "Korhonen, Virtanen, Mäkinen, Nieminen, Hämäläinen, Järvinen, Nagy, Kovács, Tóth, \
                Szabó, Horváth, Varga",
    },
    Group {
        language: "Polish and Czech",
        share: 40,
        names: "Nowak, Kowalski, Wiśniewski, Wójcik, Kowalczyk, Kamiński, Lewandowski, Zieliński, \
                Szymański, Woźniak, Dąbrowski, Kozłowski, Novák, Svoboda, Novotný, Dvořák, \
                Černý, Procházka, Kučera, Veselý",
    },
    Group {
        language: "Russian and Ukrainian, in Latin letters and in Cyrillic",
        share: 35,
        names: "Ivanov, Smirnov, Kuznetsov, Popov, Vasiliev, Petrov, Sokolov, Mikhailov, Novikov, \
                Fedorov, Shevchenko, Kovalenko, Bondarenko, Tkachenko, Иванов/Ivanov, \
                Смирнова/Smirnova, Кузнецов/Kuznetsov",
    },
    Group {
        language: "Greek, in Latin letters and in Greek",
        share: 15,
        names: "Papadopoulos, Vlachos, Angelopoulos, Nikolaidis, Georgiou, Oikonomou, \
                Παπαδάκης/Papadakis, Καραγιάννη/Karagianni",
    },
    Group {
        language: "Turkish",
        share: 25,
        names: "Yılmaz, Kaya, Demir, Şahin, Çelik, Yıldız, Yıldırım, Öztürk, Aydın, Özdemir, \
                Arslan, Doğan, Kılıç, Aslan",
    },
    Group {
        language: "Arabic",
        share: 40,
        names: "Al-Sayed, Haddad, Khoury, Mansour, Nasser, Hussein, Abdullah, Saleh, Rahman, \
                El-Amin, Farouk, Hamdan, Aziz, Karam",
    },
    Group {
        language: "Hebrew",
        share: 10,
        names: "Cohen, Levi, Mizrahi, Peretz, Biton, Friedman, Shapiro, Katz",
    },
    Group {
        language: "Indian",
        share: 50,
        names: "Patel, Sharma, Singh, Kumar, Gupta, Shah, Reddy, Iyer, Nair, Rao, Joshi, Mehta, \
                Chopra, Desai, Banerjee, Chatterjee, Menon, Pillai",
    },
    Group {
        language: "Chinese, in pinyin and in Han characters",
        share: 30,
        names: "Wang, Li, Zhang, Liu, Chen, Yang, Huang, Zhao, Wu, Zhou, Xu, Sun, 王/Wang, 李/Li",
    },
    Group {
        language: "Japanese",
        share: 20,
        names: "Satō, Suzuki, Takahashi, Tanaka, Watanabe, Itō, Yamamoto, Nakamura, Kobayashi, \
                Katō",
    },
    Group {
        language: "Korean",
        share: 15,
        names: "Kim, Lee, Park, Choi, Jung, Kang, Cho, Yoon",
    },
    Group {
        language: "Vietnamese",
        share: 10,
        names: "Nguyễn, Trần, Lê, Phạm, Hoàng, Phan, Vũ, Đặng",
    },
    Group {
        language: "West and East African",
        share: 35,
        names: "Okafor, Adeyemi, Mensah, Boateng, Okonkwo, Abubakar, Mwangi, Otieno, Kamau, \
                Diallo, Traoré, Ndlovu, Dlamini, Nkosi, Osei, Eze",
    },
    Group {
        language: "Irish and Scottish",
        share: 20,
        names: "Murphy, O'Brien, Ó Súilleabháin, Byrne, Ryan, O'Connor, MacDonald, McLeod, \
                Fitzgerald, Ó Briain",
    },
];
